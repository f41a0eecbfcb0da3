from arca.cli import main

main()

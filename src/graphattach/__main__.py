from graphattach.cli.main import main

main()

from graphattach.cli import main

main()

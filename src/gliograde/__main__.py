from gliograde.cli import main

main()

from tfspec.cli import main

main()

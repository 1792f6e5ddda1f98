from lossacc_cli.cli.app import main

main()

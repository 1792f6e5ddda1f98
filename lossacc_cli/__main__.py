from lossacc_cli.cli.entry import main

main()

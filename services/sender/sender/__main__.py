from sender.main import main

main()

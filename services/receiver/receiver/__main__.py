from receiver.main import main

main()

from strongroom.gateway.main import main

main()

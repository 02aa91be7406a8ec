from strongroom.services.audit.main import main

main()

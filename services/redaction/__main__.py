from strongroom.services.redaction.main import main

main()

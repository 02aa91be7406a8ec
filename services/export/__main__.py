from strongroom.services.export.main import main

main()

from strongroom.services.ingestion.main import main

main()

from strongroom.services.labeling.main import main

main()

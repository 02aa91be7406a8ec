from strongroom.services.tasks.main import main

main()

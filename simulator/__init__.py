"""The bench in software: board physics, SMU and board emulators on loopback sockets."""

print("lorikeet")

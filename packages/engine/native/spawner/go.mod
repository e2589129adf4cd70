module asb/spawner

go 1.26.0

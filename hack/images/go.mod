module maestro.dev/images

go 1.26

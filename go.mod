module github.com/seed-5eb4e92e/deploybot

go 1.26.8

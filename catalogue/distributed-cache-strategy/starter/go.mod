module github.com/kestrel-outdoor/catalog-service

go 1.22

module github.com/parcelbase/api

go 1.22

module github.com/jsmplatform/jsm/libs

go 1.26

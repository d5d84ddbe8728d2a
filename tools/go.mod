module github.com/jsmplatform/jsm/tools

go 1.26

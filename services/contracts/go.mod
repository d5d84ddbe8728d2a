module github.com/jsmplatform/jsm/services/contracts

go 1.26

module github.com/jsmplatform/jsm/e2e

go 1.26

module github.com/jsmplatform/jsm/e2e

go 1.26.0

replace (
	github.com/jsmplatform/jsm/libs => ../libs
	github.com/jsmplatform/jsm/proto => ../proto
	github.com/jsmplatform/jsm/services/contracts => ../services/contracts
)

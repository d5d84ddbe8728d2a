module github.com/jsmplatform/jsm/services/contracts

go 1.26.0

replace (
	github.com/jsmplatform/jsm/libs => ../../libs
	github.com/jsmplatform/jsm/proto => ../../proto
)

require (
	github.com/jsmplatform/jsm/proto v0.0.0-00010101000000-000000000000
	google.golang.org/protobuf v1.36.12
)

require buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go v1.36.12-20260825204119-511051f7f437.2 // indirect

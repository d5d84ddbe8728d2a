module github.com/jsmplatform/jsm/services/integration

go 1.26.0

replace (
	github.com/jsmplatform/jsm/libs => ../../libs
	github.com/jsmplatform/jsm/proto => ../../proto
	github.com/jsmplatform/jsm/services/changeadvisory => ../changeadvisory
	github.com/jsmplatform/jsm/services/contracts => ../contracts
	github.com/jsmplatform/jsm/services/incidents => ../incidents
	github.com/jsmplatform/jsm/services/patching => ../patching
)

require (
	connectrpc.com/connect v1.21.1
	github.com/jsmplatform/jsm/proto v0.0.0-00010101000000-000000000000
)

require (
	buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go v1.36.12-20260825204119-511051f7f437.2 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

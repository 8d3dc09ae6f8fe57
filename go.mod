module party

go 1.23

require (
	github.com/coder/websocket v1.8.15
	github.com/rs/xid v1.6.0
)

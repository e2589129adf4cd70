// Exposed ports. A local sandbox has no network (runsc --network=none), only its own loopback, so
// the engine reaches a server listening there through the agent: POST /v1/ports/{port}/tunnel
// dials the port inside the sandbox and joins the two, the request body to the connection and the
// connection's bytes back as the response body (an HTTP/2 stream is full duplex). What goes over
// it (HTTP, a WebSocket) is the engine's and the server's business, not the agent's.
package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

var tunnelRoute = regexp.MustCompile(`^/v1/ports/([0-9]{1,5})/tunnel$`)

// dialLoopback connects to a server on the sandbox's loopback, IPv4 first.
func dialLoopback(port int) (net.Conn, error) {
	var err error
	for _, host := range []string{"127.0.0.1", "::1"} {
		var conn net.Conn
		conn, err = net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), 5*time.Second)
		if err == nil {
			return conn, nil
		}
	}
	return nil, err
}

func (a *Agent) tunnel(w http.ResponseWriter, r *http.Request, portText string) error {
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return newError("Invalid", "port "+portText+" is not a TCP port (1-65535)")
	}
	conn, err := dialLoopback(port)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return newError("BadGateway", "nothing listens on port "+portText+" in the sandbox")
		}
		return newError("BadGateway", "port "+portText+" in the sandbox: "+err.Error())
	}
	defer conn.Close()
	w.Header().Set("content-type", "application/octet-stream")
	w.WriteHeader(200)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	// The engine's bytes to the server; its end of the request ends the connection's writing side.
	go func() {
		_, _ = io.Copy(conn, r.Body)
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
	}()
	// The server's bytes to the engine, each read sent at once (a WebSocket's frames, a stream).
	buf := make([]byte, 128*1024) // a bulk transfer is sent in large frames; a small message at once
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the engine went away
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return nil // the server closed: the response ends
		}
	}
}

package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/flashsale/flashsale/client"
)

func Example() {
	ctx := context.Background()
	// Zero Options: plain TCP, 5 s per call, a PING every 15–30 s while idle.
	// For TLS: client.Options{TLS: &tls.Config{ServerName: "shop.example"}}.
	conn, err := client.Dial(ctx, "127.0.0.1:8080", client.Options{})
	if err != nil {
		log.Fatal(err) // a *client.DialError: nothing was sent
	}
	defer conn.Close()

	// Safe for concurrent use: goroutines share the connection, their
	// requests are pipelined and each gets its own answer.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := conn.Purchase(ctx, client.Request{ProductID: "iphone15", UserID: "user_123", RequestID: "c0ffee-1"})
	switch {
	case err != nil:
		// No answer: the outcome is unknown; retry with the same RequestID.
		log.Printf("purchase: %v", err)
	case r.Status == "SUCCESS":
		fmt.Println("order", r.OrderID, "remaining", r.RemainingStock)
	default:
		fmt.Println("not sold:", r.Status, r.Code, r.Error)
	}
}

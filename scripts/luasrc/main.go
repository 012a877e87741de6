package main

import (
	"fmt"
	"os"

	"github.com/flashsale/flashsale/engine"
)

func main() {
	if len(os.Args) != 2 {
		for _, s := range engine.Scripts() {
			fmt.Println(s.Name())
		}
		return
	}
	for _, s := range engine.Scripts() {
		if s.Name() == os.Args[1] {
			fmt.Print(s.Source())
			return
		}
	}
	fmt.Fprintf(os.Stderr, "luasrc: no script %q (run it with no argument for the list)\n", os.Args[1])
	os.Exit(2)
}

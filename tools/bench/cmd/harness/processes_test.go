package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const dieParentEnv = "HARNESS_TEST_DIE_PARENT"

func TestMain(m *testing.M) {
	if os.Getenv(dieParentEnv) != "" {
		// The stand-in for the harness: start a child as the harness
		// does, say its pid, wait to be killed.
		child := dieWithHarness(exec.Command("sleep", "600"))
		if err := child.Start(); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(child.Process.Pid)
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// alive reports whether pid runs (a zombie waiting for a reaper does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestDieWithHarness kills a stand-in for the harness with SIGKILL, the
// one signal it cannot handle, and expects the child it started to go.
func TestDieWithHarness(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep(1)")
	}
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), dieParentEnv+"=1")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		parent.Process.Kill()
		parent.Wait()
		t.Fatalf("the stand-in said nothing: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		parent.Process.Kill()
		parent.Wait()
		t.Fatalf("the stand-in said %q", line)
	}
	if !alive(pid) {
		t.Fatalf("child %d is not running before its parent is killed", pid)
	}
	parent.Process.Kill()
	parent.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			// Do not leave it behind either way.
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
			t.Fatalf("child %d still runs 10 s after the harness was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

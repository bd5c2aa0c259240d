package capacity

const oomChildEnv = "CAPACITY_TEST_OOM_CHILD"

func oomChild() {}

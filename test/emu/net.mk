# test/emu/net.mk: network scenarios (filled in by the next commit).

module cog-ts/bench-peers/chunked-push

go 1.22

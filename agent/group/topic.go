package group

import "math"

// OffsetsTopic is where the coordinators keep groups and offsets; its
// partition count fixes which partition's leader coordinates each group.
const OffsetsTopic = "__consumer_offsets"

// CoordinatorPartition is Kafka's choice of offsets partition for a group.
func CoordinatorPartition(groupID string, partitions int) int32 {
	var h int32
	for _, r := range groupID { // Java's String.hashCode over UTF-16 units
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return (h & math.MaxInt32) % int32(partitions)
}

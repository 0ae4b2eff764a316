package kafka

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestResponseErrorLabel(t *testing.T) {
	av := kmsg.NewPtrApiVersionsResponse()
	av.ErrorCode = kerr.UnsupportedVersion.Code

	ct := kmsg.NewPtrCreateTopicsResponse()
	ok, bad := kmsg.NewCreateTopicsResponseTopic(), kmsg.NewCreateTopicsResponseTopic()
	bad.ErrorCode = kerr.TopicAlreadyExists.Code
	ct.Topics = append(ct.Topics, ok, bad)

	lo := kmsg.NewPtrListOffsetsResponse()
	lt := kmsg.NewListOffsetsResponseTopic()
	lp := kmsg.NewListOffsetsResponseTopicPartition()
	lp.ErrorCode = kerr.OffsetNotAvailable.Code
	lt.Partitions = append(lt.Partitions, kmsg.NewListOffsetsResponseTopicPartition(), lp)
	lo.Topics = append(lo.Topics, lt)

	for _, c := range []struct {
		resp kmsg.Response
		want string
	}{
		{kmsg.NewPtrMetadataResponse(), "none"},
		{av, "UNSUPPORTED_VERSION"},
		{ct, "TOPIC_ALREADY_EXISTS"},
		{lo, "OFFSET_NOT_AVAILABLE"},
	} {
		if got := errorName(firstErrorCode(reflect.ValueOf(c.resp).Elem())); got != c.want {
			t.Errorf("%T: error label %q, want %q", c.resp, got, c.want)
		}
	}
	if got := errorName(-12345); got != "-12345" {
		t.Errorf("unknown code: %q", got)
	}
}

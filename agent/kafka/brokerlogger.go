package kafka

// The BROKER_LOGGER resource (type 8, KIP-412): Kafka lists its log4j
// loggers and lets an operator change their levels at run time, in memory
// only. tlog has one logger per process, "root", whose level is the
// agent's --log-level: DescribeConfigs shows it, IncrementalAlterConfigs
// SET changes it until the process ends. Kafka's levels map onto slog's:
// TRACE and DEBUG to debug (tlog has no finer level), WARN, ERROR, FATAL
// to error and above, OFF to nothing.

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/metadata"
)

const (
	resourceBrokerLogger     = 8
	sourceDynamicBrokerLoggr = 6 // DYNAMIC_BROKER_LOGGER_CONFIG
	rootLogger               = "root"
	levelOff                 = slog.Level(1 << 20)
	levelFatal               = slog.LevelError + 4
)

// kafkaLevel names a slog level as log4j would.
func kafkaLevel(l slog.Level) string {
	switch {
	case l >= levelOff:
		return "OFF"
	case l >= levelFatal:
		return "FATAL"
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARN"
	case l >= slog.LevelInfo:
		return "INFO"
	case l >= slog.LevelDebug:
		return "DEBUG"
	}
	return "TRACE"
}

func parseKafkaLevel(v string) (slog.Level, error) {
	switch strings.ToUpper(v) {
	case "TRACE":
		return slog.LevelDebug - 4, nil
	case "DEBUG":
		return slog.LevelDebug, nil
	case "INFO":
		return slog.LevelInfo, nil
	case "WARN":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	case "FATAL":
		return levelFatal, nil
	case "OFF":
		return levelOff, nil
	}
	return 0, fmt.Errorf("%w: %q is not a log level: TRACE, DEBUG, INFO, WARN, ERROR, FATAL or OFF", topic.ErrInvalidConfig, v)
}

// brokerLoggerResource checks a BROKER_LOGGER resource name: this agent's
// id, on an agent whose level can change.
func (s *Server) brokerLoggerResource(name string) error {
	if name != strconv.Itoa(int(s.cfg.ID)) {
		return fmt.Errorf("%w: broker loggers are described and altered on the agent itself; this is agent %d", controller.ErrInvalidRequest, s.cfg.ID)
	}
	if s.cfg.LogLevel == nil {
		return fmt.Errorf("%w: this agent's log level is fixed (it was given a logger, not a level)", controller.ErrInvalidRequest)
	}
	return nil
}

func (s *Server) describeBrokerLogger(r *request, rr kmsg.DescribeConfigsRequestResource, req *kmsg.DescribeConfigsRequest, sr *kmsg.DescribeConfigsResponseResource) {
	if !r.allowedCluster(metadata.OpDescribeConfigs) {
		sr.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		sr.ErrorMessage = kmsg.StringPtr(r.Principal() + " may not describe broker loggers")
		return
	}
	if err := s.brokerLoggerResource(rr.ResourceName); err != nil {
		sr.ErrorCode, sr.ErrorMessage = alterErr(err)
		return
	}
	if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, rootLogger) {
		return
	}
	v := kafkaLevel(s.cfg.LogLevel.Level())
	rc := configEntry(req, rootLogger, v, sourceDynamicBrokerLoggr, configTypeString, "The agent's one logger; its level is --log-level until changed here (not kept across restarts).", false)
	if req.IncludeSynonyms {
		rc.ConfigSynonyms = append(rc.ConfigSynonyms, configSynonym(synonym{rootLogger, v, sourceDynamicBrokerLoggr}))
	}
	sr.Configs = append(sr.Configs, rc)
}

func (s *Server) alterBrokerLogger(r *request, rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	if !r.allowedCluster(metadata.OpAlterConfigs) {
		return fmt.Errorf("%w: %s may not alter broker loggers", errClusterAuthorization, r.Principal())
	}
	if err := s.brokerLoggerResource(rr.ResourceName); err != nil {
		return err
	}
	level, set := slog.Level(0), false
	for _, c := range rr.Configs {
		if c.Name != rootLogger {
			return fmt.Errorf("%w: logger %s does not exist (tlog has one, root)", topic.ErrInvalidConfig, c.Name)
		}
		switch {
		case c.Op == 0 && c.Value != nil:
			l, err := parseKafkaLevel(*c.Value)
			if err != nil {
				return err
			}
			level, set = l, true
		case c.Op == 1:
			return fmt.Errorf("%w: removing the level of the root logger is not allowed", controller.ErrInvalidRequest)
		default:
			return fmt.Errorf("%w: loggers take SET LEVEL", controller.ErrInvalidRequest)
		}
	}
	if set && !validateOnly {
		s.log.Info("log level changed", "level", kafkaLevel(level), "by", r.Principal())
		s.cfg.LogLevel.Set(level)
	}
	return nil
}

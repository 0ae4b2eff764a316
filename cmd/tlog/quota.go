package main

// tlog quota alter|list: client quotas (producer_byte_rate,
// consumer_byte_rate) per user, client id, or user's client id, through
// AlterClientQuotas and DescribeClientQuotas, as kafka-configs.sh
// --entity-type users|clients manages them.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/urfave/cli/v2"
)

func quotaCommand() *cli.Command {
	entityFlags := []cli.Flag{
		&cli.StringFlag{Name: "user", Usage: "the user (a SASL user name, or the certificate subject)"},
		&cli.BoolFlag{Name: "default-user", Usage: "every user without a quota of its own"},
		&cli.StringFlag{Name: "client-id", Usage: "the client id"},
		&cli.BoolFlag{Name: "default-client-id", Usage: "every client id without a quota of its own"},
	}
	return &cli.Command{
		Name:  "quota",
		Usage: "set and list client quotas (bytes per second, per agent)",
		Subcommands: []*cli.Command{
			{
				Name:  "alter",
				Usage: "set or remove quotas of a user, a client id, or a user's client id",
				Description: "Quotas: producer_byte_rate, consumer_byte_rate (bytes per second each agent lets the\n" +
					"entity produce or fetch; clients over it are throttled). The most specific quota applies:\n" +
					"user and client id, user, default user, client id, default client id.\n\n" +
					"  tlog quota alter --user alice --add producer_byte_rate=1048576\n" +
					"  tlog quota alter --default-user --add consumer_byte_rate=10485760\n" +
					"  tlog quota alter --user alice --remove producer_byte_rate\n\n" + exitCodesHelp,
				Flags: append(append([]cli.Flag{}, entityFlags...),
					multiFlag("add", "KEY=BYTES_PER_SECOND to set (repeatable)"),
					multiFlag("remove", "KEY to remove (repeatable)"),
				),
				Action: withArgs("", 0, 0, quotaAlter),
			},
			{
				Name:        "list",
				Aliases:     []string{"ls"},
				Usage:       "list quotas, all or those of the entity given",
				Description: "Prints ENTITY KEY VALUE.\n\n" + exitCodesHelp,
				Flags:       entityFlags,
				Action:      withArgs("", 0, 0, quotaList),
			},
		},
	}
}

// quotaEntity is the entity the flags name (nil: none named).
func quotaEntity(c *cli.Context) (kadm.ClientQuotaEntity, error) {
	var e kadm.ClientQuotaEntity
	for _, part := range []struct{ typ, flag string }{{"user", "user"}, {"client-id", "client-id"}} {
		name, def := c.String(part.flag), c.Bool("default-"+part.flag)
		switch {
		case name != "" && def:
			return nil, fail(2, "give --%s or --default-%s, not both", part.flag, part.flag)
		case def:
			e = append(e, kadm.ClientQuotaEntityComponent{Type: part.typ})
		case name != "":
			e = append(e, kadm.ClientQuotaEntityComponent{Type: part.typ, Name: &name})
		}
	}
	return e, nil
}

func quotaAlter(c *cli.Context, _ []string) error {
	entity, err := quotaEntity(c)
	if err != nil {
		return err
	}
	if len(entity) == 0 {
		return fail(2, "name the entity: --user, --default-user, --client-id and/or --default-client-id")
	}
	kvs, err := parseKV("add", multi(c, "add"))
	if err != nil {
		return err
	}
	var ops []kadm.AlterClientQuotaOp
	for _, kv := range kvs {
		v, err := strconv.ParseFloat(kv[1], 64)
		if err != nil || !(v > 0) {
			return fail(2, "bad --add %s=%s: give a positive number of bytes per second", kv[0], kv[1])
		}
		ops = append(ops, kadm.AlterClientQuotaOp{Key: kv[0], Value: v})
	}
	for _, k := range multi(c, "remove") {
		ops = append(ops, kadm.AlterClientQuotaOp{Key: k, Remove: true})
	}
	if len(ops) == 0 {
		return fail(2, "give --add KEY=VALUE or --remove KEY")
	}
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: entity, Ops: ops}})
	if err != nil {
		return requestErr(c, "alter quotas", err)
	}
	for _, r := range res {
		if r.Err != nil {
			msg := r.Err.Error()
			if r.ErrMessage != "" {
				msg += " (" + r.ErrMessage + ")"
			}
			return fail(1, "alter quotas of %s: %s", entity, msg)
		}
	}
	fmt.Fprintf(c.App.Writer, "quotas of %s altered\n", entity)
	return nil
}

func quotaList(c *cli.Context, _ []string) error {
	entity, err := quotaEntity(c)
	if err != nil {
		return err
	}
	var comps []kadm.DescribeClientQuotaComponent
	for _, part := range entity {
		comp := kadm.DescribeClientQuotaComponent{Type: part.Type, MatchName: part.Name}
		if part.Name == nil {
			comp.MatchType = 1 // the default
		}
		comps = append(comps, comp)
	}
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	described, err := adm.DescribeClientQuotas(ctx, len(comps) > 0, comps)
	if err != nil {
		return requestErr(c, "list quotas", err)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "ENTITY\tKEY\tVALUE")
	for _, d := range described {
		var parts []string
		for _, p := range d.Entity {
			parts = append(parts, p.String())
		}
		for _, v := range d.Values {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.Join(parts, ","), v.Key, strconv.FormatFloat(v.Value, 'f', -1, 64))
		}
	}
	return tw.Flush()
}

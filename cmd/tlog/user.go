package main

// tlog user create|delete|list: SCRAM users, through
// AlterUserScramCredentials and DescribeUserScramCredentials (kadm salts
// and iterates the password on this side; only the salted form travels,
// and the agents keep only the keys derived from it).

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/urfave/cli/v2"
)

func userCommand() *cli.Command {
	mechFlag := func(def string) cli.Flag {
		return &cli.StringFlag{Name: "mechanism", Value: def, Usage: "SCRAM-SHA-256 or SCRAM-SHA-512"}
	}
	return &cli.Command{
		Name:  "user",
		Usage: "create, delete and list SCRAM users",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a user, or set its password for one mechanism",
				ArgsUsage: "NAME",
				Description: "Reads the password from the first line of standard input (--password-stdin is\n" +
					"required, so a password never sits in the shell's history or ps).\n\n" + exitCodesHelp,
				Flags: []cli.Flag{
					mechFlag("SCRAM-SHA-512"),
					&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from standard input (required)"},
					&cli.IntFlag{Name: "iterations", Value: 8192, Usage: "PBKDF2 iterations (4096 to 16384)"},
				},
				Action: withArgs("NAME", 1, 1, userCreate),
			},
			{
				Name:        "delete",
				Usage:       "delete a user's credential for one mechanism",
				ArgsUsage:   "NAME",
				Description: exitCodesHelp,
				Flags:       []cli.Flag{mechFlag("SCRAM-SHA-512")},
				Action:      withArgs("NAME", 1, 1, userDelete),
			},
			{
				Name:        "list",
				Aliases:     []string{"ls"},
				Usage:       "list users with their mechanisms and iterations",
				Description: "Prints USER MECHANISM ITERATIONS.\n\n" + exitCodesHelp,
				Action:      withArgs("", 0, 0, userList),
			},
		},
	}
}

func scramMechanism(c *cli.Context) (kadm.ScramMechanism, error) {
	switch strings.ToUpper(c.String("mechanism")) {
	case "SCRAM-SHA-256":
		return kadm.ScramSha256, nil
	case "SCRAM-SHA-512":
		return kadm.ScramSha512, nil
	}
	return 0, fail(2, "bad --mechanism %q: use SCRAM-SHA-256 or SCRAM-SHA-512", c.String("mechanism"))
}

func userCreate(c *cli.Context, args []string) error {
	mech, err := scramMechanism(c)
	if err != nil {
		return err
	}
	if !c.Bool("password-stdin") {
		return fail(2, "give the password on standard input with --password-stdin")
	}
	if n := c.Int("iterations"); n < 4096 || n > 16384 {
		return fail(2, "bad --iterations %d: give 4096 to 16384", n)
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	pass := strings.TrimRight(line, "\r\n")
	if pass == "" {
		return fail(2, "no password on standard input (%v)", err)
	}
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: args[0], Mechanism: mech, Iterations: int32(c.Int("iterations")), Password: pass}})
	if err != nil {
		return requestErr(c, "create user", err)
	}
	if err := res.Error(); err != nil {
		return fail(1, "create user %s: %v", args[0], err)
	}
	fmt.Fprintf(c.App.Writer, "user %s: %s credential set\n", args[0], mech)
	return nil
}

func userDelete(c *cli.Context, args []string) error {
	mech, err := scramMechanism(c)
	if err != nil {
		return err
	}
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: args[0], Mechanism: mech}}, nil)
	if err != nil {
		return requestErr(c, "delete user", err)
	}
	if err := res.Error(); err != nil {
		return fail(1, "delete user %s: %v", args[0], err)
	}
	fmt.Fprintf(c.App.Writer, "user %s: %s credential deleted\n", args[0], mech)
	return nil
}

func userList(c *cli.Context, _ []string) error {
	adm, ctx, done, err := admin(c)
	if err != nil {
		return err
	}
	defer done()
	described, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		return requestErr(c, "list users", err)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "USER\tMECHANISM\tITERATIONS")
	for _, d := range described.Sorted() {
		for _, ci := range d.CredInfos {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", d.User, ci.Mechanism, ci.Iterations)
		}
	}
	return tw.Flush()
}

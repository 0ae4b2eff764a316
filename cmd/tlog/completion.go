package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// Shell completion: bash and zsh ask the binary itself for the words that
// may follow (urfave/cli answers --generate-bash-completion with the
// subcommands or, after a "-", the flags of the command line so far), so
// they stay true as commands change; fish gets a generated script.

const bashCompletion = `# tlog completion for bash: source <(tlog completion bash)
_tlog_complete() {
	local cur="${COMP_WORDS[COMP_CWORD]}" words
	if [[ "$cur" == -* ]]; then
		words=$("${COMP_WORDS[@]:0:COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		words=$("${COMP_WORDS[@]:0:COMP_CWORD}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o bashdefault -o default -F _tlog_complete tlog
`

const zshCompletion = `#compdef tlog
# tlog completion for zsh: source <(tlog completion zsh)
_tlog() {
	local cur=${words[CURRENT]}
	local -a found
	if [[ "$cur" == -* ]]; then
		found=("${(@f)$(${words[1,CURRENT-1]} $cur --generate-bash-completion 2>/dev/null)}")
	else
		found=("${(@f)$(${words[1,CURRENT-1]} --generate-bash-completion 2>/dev/null)}")
	fi
	if [[ -n "${found[1]}" ]]; then
		compadd -- $found
	else
		_files
	fi
}
compdef _tlog tlog
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: "Prints the script that completes tlog's commands and flags in SHELL.\n\n" +
			"  source <(tlog completion bash)                      # this shell; add it to ~/.bashrc to keep it\n" +
			"  tlog completion zsh > \"${fpath[1]}/_tlog\"            # zsh, from the next shell on\n" +
			"  tlog completion fish > ~/.config/fish/completions/tlog.fish",
		Action: withArgs("bash|zsh|fish", 1, 1, func(c *cli.Context, args []string) error {
			switch args[0] {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, zshCompletion)
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return fail(1, "fish completion: %v", err)
				}
				fmt.Fprint(c.App.Writer, s)
			default:
				return fail(2, "unknown shell %q: use bash, zsh or fish (see tlog completion --help)", args[0])
			}
			return nil
		}),
	}
}

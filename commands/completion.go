package commands

import (
	"io"

	"github.com/urfave/cli/v2"
)

// The shell scripts ask flashsale itself for the candidates: urfave/cli
// answers `flashsale … --generate-bash-completion` with the subcommands
// and flags that fit there.
const (
	bashCompletion = `# flashsale completion for bash: source <(flashsale completion bash)
_flashsale_complete() {
  local cur opts
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == "-"* ]]; then
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "${cur}" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  return 0
}
complete -o bashdefault -o default -F _flashsale_complete flashsale
`
	zshCompletion = `#compdef flashsale
# flashsale completion for zsh: source <(flashsale completion zsh)
_flashsale() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _flashsale flashsale
`
	// Written here rather than urfave/cli's ToFishCompletion, which
	// recurses without end through the help command (v2.27).
	fishCompletion = `# flashsale completion for fish: flashsale completion fish > ~/.config/fish/completions/flashsale.fish
function __fish_flashsale_complete
    set -l args (commandline -opc)
    set -l cur (commandline -ct)
    if string match -q -- '-*' $cur
        $args $cur --generate-bash-completion 2>/dev/null
    else
        $args --generate-bash-completion 2>/dev/null
    end
end
complete -c flashsale -f -a '(__fish_flashsale_complete)'
`
)

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: "bash: source <(flashsale completion bash)   (or save it in /etc/bash_completion.d/flashsale)\n" +
			"zsh:  source <(flashsale completion zsh)\n" +
			"fish: flashsale completion fish > ~/.config/fish/completions/flashsale.fish",
		Action: func(c *cli.Context) error {
			as, err := args(c, "SHELL")
			if err != nil {
				return err
			}
			var script string
			switch as[0] {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			case "fish":
				script = fishCompletion
			default:
				return usageErrorf(c, "unknown shell %q: bash, zsh or fish", as[0])
			}
			_, err = io.WriteString(c.App.Writer, script)
			return err
		},
	}
}

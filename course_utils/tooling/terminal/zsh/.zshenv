# The course's JupyterLab terminal (zsh): zsh reads its start-up files from $ZDOTDIR, which
# start.py points here; this one reads yours. (See ../bashrc for why.)
if [[ -f "${COURSE_USER_ZDOTDIR:-$HOME}/.zshenv" ]]; then
    source "${COURSE_USER_ZDOTDIR:-$HOME}/.zshenv"
fi

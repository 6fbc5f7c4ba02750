# The course's JupyterLab terminal (zsh): your ~/.zshrc, then the course's Python first on
# PATH (your .zshrc may run `conda init` or `pyenv init`, which put another Python first).
ZDOTDIR="${COURSE_USER_ZDOTDIR:-$HOME}"
if [[ -f "$ZDOTDIR/.zshrc" ]]; then
    source "$ZDOTDIR/.zshrc"
fi
if [[ -n "${COURSE_PYTHON_BIN:-}" ]]; then
    export PATH="$COURSE_PYTHON_BIN:$PATH"
    rehash
fi

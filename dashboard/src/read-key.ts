// The read key, asked for only once the API refuses without one. It lives in this tab's
// sessionStorage, never in the URL or a cookie, so it is neither shared with a link nor sent
// anywhere the page does not send it itself.

const storageKey = 'pulse.readKey';

export function storedReadKey(): string | null {
  return sessionStorage.getItem(storageKey);
}

/** Forgets a refused key, unless another has been typed since it was sent. */
export function forgetReadKey(refused: string): void {
  if (sessionStorage.getItem(storageKey) === refused) sessionStorage.removeItem(storageKey);
}

export interface KeyPrompt {
  /** Shows the form (once; further calls only update the message, if given) and resolves with
   *  the key typed, already stored. */
  ask(message?: string): Promise<string>;
  /** Hides the form: the key was accepted. */
  accepted(): void;
}

export function createKeyPrompt(): KeyPrompt {
  const form = document.getElementById('key-form') as HTMLFormElement;
  const input = document.getElementById('key-input') as HTMLInputElement;
  const error = document.getElementById('key-error') as HTMLElement;
  let waiting: ((key: string) => void)[] = [];
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (key === '') return;
    sessionStorage.setItem(storageKey, key);
    error.textContent = '';
    const resolvers = waiting;
    waiting = [];
    for (const resolve of resolvers) resolve(key);
  });
  return {
    ask(message) {
      if (message !== undefined) error.textContent = message;
      if (form.hidden) {
        form.hidden = false;
        input.focus();
      }
      return new Promise((resolve) => waiting.push(resolve));
    },
    accepted() {
      form.hidden = true;
      input.value = '';
      error.textContent = '';
    },
  };
}

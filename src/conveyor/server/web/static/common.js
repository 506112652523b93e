// Every page: forms marked .confirm ask first (cancel, retry all).
for (const form of document.querySelectorAll("form.confirm")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm || "Are you sure?")) event.preventDefault();
  });
}

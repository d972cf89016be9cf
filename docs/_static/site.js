// sphinx-book-theme 1.4 draws its own sidebar toggles in the article header, but pydata-sphinx-theme
// 0.20 wires only the first toggle of each kind on the page (in its navbar, hidden by sphinx-book-theme).
// Forward a click on any other toggle to that first one, so the menus open on phones and tablets too.
document.addEventListener("DOMContentLoaded", () => {
  for (const kind of ["primary-toggle", "secondary-toggle"]) {
    const [wired, ...others] = document.querySelectorAll(`.sidebar-toggle.${kind}`);
    for (const button of others) {
      button.addEventListener("click", (event) => {
        event.preventDefault();
        wired.click();
      });
    }
  }
});

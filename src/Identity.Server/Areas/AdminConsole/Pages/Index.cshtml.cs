using Microsoft.AspNetCore.Mvc;

namespace Identity.Server.AdminConsole.Pages;

/// <summary>The console's front page: the accounts (an account admin's is the only one listed).</summary>
public sealed class IndexModel : ConsolePageModel
{
    public IActionResult OnGet() => Redirect(ConsoleClient.BasePath + "/accounts");
}

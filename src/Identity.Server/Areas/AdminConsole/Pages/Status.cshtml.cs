using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.AdminConsole.Pages;

/// <summary>
/// The console's refusals as pages (re-executed by the status-code pages for any console path, whatever the method):
/// 400 (a form without its anti-forgery token, a failed sign-in), 403, 404. Reads no form, so takes no token.
/// </summary>
[IgnoreAntiforgeryToken]
public sealed class StatusModel : PageModel
{
    public string Title { get; private set; } = "";

    public string Message { get; private set; } = "";

    // From the route only: a re-executed form's own field called "code" (a region's) would otherwise win the binding.
    public IActionResult OnGet([FromRoute] int code) => Show(code);

    public IActionResult OnPost([FromRoute] int code) => Show(code);

    private PageResult Show(int code)
    {
        (Title, Message) = code switch
        {
            StatusCodes.Status400BadRequest => ("Request refused",
                "The request could not be accepted: the form may have expired or come from another site. Go back, reload the page and try again."),
            StatusCodes.Status403Forbidden => ("Not allowed",
                "Your sign-in does not give access to this: the console is for platform administrators and for the owners and admins of an account."),
            StatusCodes.Status404NotFound => ("Not found", "There is nothing here, or it is not yours to see."),
            _ => ("Something went wrong", "The request could not be completed."),
        };
        Response.StatusCode = code is >= 400 and < 600 ? code : StatusCodes.Status404NotFound;
        return Page();
    }
}

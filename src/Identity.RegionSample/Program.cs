using Identity.RegionSample.Pages;
using Identity.RegionSample.SignIn;

var builder = WebApplication.CreateBuilder(args);

builder.AddRegionSignIn();

var app = builder.Build();

app.UseAuthentication();
app.UseAuthorization();
app.MapRegionPages();

await app.RunAsync();

public partial class Program;

using Identity.RegionSample.Pages;
using Identity.RegionSample.Replica;
using Identity.RegionSample.SignIn;

var builder = WebApplication.CreateBuilder(args);

builder.AddRegionSignIn();
builder.AddRegionReplica();

var app = builder.Build();

app.UseAuthentication();
app.UseAuthorization();
app.MapRegionPages();
app.MapReplicaPages();

await app.RunAsync();

public partial class Program;

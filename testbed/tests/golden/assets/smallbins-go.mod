module selfhost.test/smallbins

go 1.22
